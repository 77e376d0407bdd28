"""kms command implementations, one module per command group."""
