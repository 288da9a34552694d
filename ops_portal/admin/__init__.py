"""The dispatcher's pages: the dispatch board and the archive."""
