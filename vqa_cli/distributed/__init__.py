"""Scale-out engines for `vqa batch`: a Ray actor pool (`--engine ray`). Each runs the same answering path."""
