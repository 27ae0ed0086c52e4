"""What the server keeps on disk: the SQLite database, the generation log, retention, the
lock that keeps one server per directory, and safe reads of stored files."""
