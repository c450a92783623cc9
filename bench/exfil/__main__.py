from bench.exfil.run import main

raise SystemExit(main())
