from bench.cages.run import main

raise SystemExit(main())
