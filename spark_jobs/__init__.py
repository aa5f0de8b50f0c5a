"""spark-submit entry points for the batch and speed layers."""
