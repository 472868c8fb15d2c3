from mptcplab.cli.main import main

main()
