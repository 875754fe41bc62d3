"""What every domain shares: the one error type, atomic writes, run ids, hashing, `package://` paths and the
storage layout. Imports nothing else from nexa_core except config-free helpers."""
