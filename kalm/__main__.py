from kalm.cli import main

raise SystemExit(main())
