"""Model folders: where models live on disk (`roots`), which files are models (`names`, `walk`)
and what those files and the files beside them say (`facts`).

Everything here is synchronous, touches no database and no event loop: the scan runs it in
an executor and decides what to write.
"""
