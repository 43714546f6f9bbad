from movierec.cli import main

main()
