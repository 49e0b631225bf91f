from telemetry_cli.main import main

main()
