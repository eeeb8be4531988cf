from console_service.bootstrap import main

main()
