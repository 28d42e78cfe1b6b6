from kafka_jmx.cli import main

raise SystemExit(main())
