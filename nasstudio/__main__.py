from nasstudio.cli import main

raise SystemExit(main())
