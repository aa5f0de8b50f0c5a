"""Operational data store on HBase (happybase), with the same interface as ``ods``."""
