"""Jobs and analysts share one metastore: Spark writes, the Thrift server reads."""

import uuid

from chispa import assert_df_equality
from kafka import KafkaProducer

from spark_jobs import smoke
from tradelake.smoke import run_smoke


def test_session_factory_table_is_visible_through_thrift_server(spark, cfg, thrift_query):
    table = f"default.it_{uuid.uuid4().hex[:8]}"
    df = spark.createDataFrame([("AAPL", 1, 189.5), ("MSFT", 2, 401.25)],
                               "symbol string, qty int, price double")
    df.write.format("parquet").saveAsTable(table)
    try:
        location = spark.sql(f"DESCRIBE FORMATTED {table}").where("col_name = 'Location'").first()
        assert location["data_type"].startswith(cfg.warehouse_dir)
        rows = thrift_query(f"SELECT symbol, qty, price FROM {table} ORDER BY symbol")
        assert rows == [("AAPL", 1, 189.5), ("MSFT", 2, 401.25)]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_spark_submit_smoke_job_seen_by_pyhive(spark, cfg, thrift_query, spark_submit_env, monkeypatch):
    for key, value in spark_submit_env.items():
        monkeypatch.setenv(key, value)  # run_smoke's spark-submit takes this process's environment
    table = f"default.it_smoke_{uuid.uuid4().hex[:6]}"
    result = run_smoke(cfg, table=table, rows=250)
    assert result["ok"], result
    assert result["thrift_server"]["seen"] == {"rows": 250, "seq_sum": 250 * 249 // 2, "symbols": 4}
    # a rerun replaces its partitions instead of appending: the job's own extract/transform/load
    # once more, in this process's session (the spark-submit path is proven above; a second
    # JVM start-up would add nothing), seen through the Thrift server again
    smoke.load(smoke.transform(smoke.extract(spark, 250), smoke.SYMBOLS), table)
    assert thrift_query(f"SELECT count(*), sum(seq), count(DISTINCT symbol) FROM {table}") == [
        (250, 250 * 249 // 2, 4)]
    assert sorted(r[0] for r in thrift_query(f"SHOW PARTITIONS {table}")) == \
        result["thrift_server"]["partitions"]
    thrift_query(f"DROP TABLE {table}")


def test_spark_kafka_connector_reads_a_topic(spark, cfg):
    topic = f"it-spark-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all")
    for i in range(20):
        producer.send(topic, key=f"S{i % 2}".encode(), value=f"{i}".encode())
    producer.flush()
    producer.close()
    got = (spark.read.format("kafka")
           .option("kafka.bootstrap.servers", cfg.kafka.bootstrap)
           .option("subscribe", topic)
           .option("startingOffsets", "earliest").option("endingOffsets", "latest")
           .load()
           .selectExpr("CAST(key AS STRING) AS key", "CAST(CAST(value AS STRING) AS INT) AS v")
           .orderBy("v"))
    expected = spark.createDataFrame([(f"S{i % 2}", i) for i in range(20)], "key string, v int")
    assert_df_equality(got, expected, ignore_nullable=True)
