from multivac.cli import main

main()
