"""The one answering stream and the commands built on it: batch, eval, metrics, explain."""
