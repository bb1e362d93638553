"""The domain: what the library does (promotion and its strategies, stage 1, browsing, editing
example images, metadata rules), in the library's own terms. It reads through storage queries,
changes through the unit of work (storage.change), and knows nothing of HTTP."""
