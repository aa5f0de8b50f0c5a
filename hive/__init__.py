"""The warehouse: Hive DDL (``hive/ddl/*.hql``), analysts' queries (``hive/queries/``) and the
code that renders and applies them (``hive.warehouse``, ``tradelake hive|sql``)."""
