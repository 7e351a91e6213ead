"""Scale-out engines for `vqa batch`: Ray Data (`--engine ray`). Each runs the same answering path."""
