from modelops.cli.app import main

main()
