"""The stack's endpoints, exercised with the clients users will use."""

import contextlib
import json
import time
import uuid

import happybase
import psycopg2
from hdfs import InsecureClient
from kafka import KafkaConsumer, KafkaProducer
from pyhive import hive

EXPECTED_SHAPE = {
    "postgres": {"dsn", "up"},
    "hdfs": {"uri", "webhdfs", "up"},
    "kafka": {"bootstrap", "up"},
    "hbase": {"thrift_host", "thrift_port", "up"},
    "hive": {"host", "port", "up"},
}


def test_status_reports_every_service_up_with_its_endpoint(stack, cfg):
    status = stack.status()
    json.dumps(status)  # serialisable as `status --json` prints it
    for service, keys in EXPECTED_SHAPE.items():
        assert keys <= set(status[service]), service
        assert status[service]["up"] is True, (service, status[service])
        assert sum(status[service]["rss_mb"].values()) > 0
    assert status["lake_root"] == cfg.lake.root
    assert status["hdfs"]["webhdfs"] == f"http://127.0.0.1:{cfg.hdfs.http_port}"


def test_up_is_idempotent(stack):
    report = stack.up()
    assert set(report.already_running) == {"postgres", "hdfs", "kafka", "hbase", "hive"}


def test_postgres_select_1_and_databases(stack, cfg):
    with contextlib.closing(psycopg2.connect(cfg.postgres.dsn())) as conn, conn.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
        cur.execute("select datname from pg_database order by 1")
        names = {row[0] for row in cur.fetchall()}
    assert {cfg.postgres.ods_database, cfg.postgres.metastore_database} <= names


def test_postgres_runs_unprivileged(stack, cfg):
    with contextlib.closing(psycopg2.connect(cfg.postgres.dsn())) as conn, conn.cursor() as cur:
        cur.execute("select pg_postmaster_start_time() is not null, current_setting('data_directory')")
        started, data_dir = cur.fetchone()
    assert started and data_dir.startswith(str(cfg.var_dir))
    pid = stack.services()[0].processes()[0].pid()
    with open(f"/proc/{pid}/status") as status:
        uid = int(status.read().split("Uid:")[1].split()[0])
    assert uid != 0


def test_pyhive_show_databases(stack, cfg):
    conn = hive.connect(host=cfg.hive.host, port=cfg.hive.port, auth=cfg.hive.auth,
                        username=cfg.hive.username)
    with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
        cur.execute("SHOW DATABASES")
        assert ("default",) in cur.fetchall()


def test_kafka_produce_consume_round_trip(stack, cfg):
    topic = f"it-roundtrip-{uuid.uuid4().hex[:8]}"
    sent = [(f"SYM{i % 3}".encode(), f"tick-{i}".encode()) for i in range(50)]
    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all",
                             enable_idempotence=True)
    for key, value in sent:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=cfg.kafka.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000,
                             group_id=f"it-{uuid.uuid4().hex[:6]}")
    received = []
    deadline = time.monotonic() + 60
    while len(received) < len(sent) and time.monotonic() < deadline:
        for msg in consumer:
            received.append((msg.key, msg.value))
            if len(received) == len(sent):
                break
    consumer.close()
    assert sorted(received) == sorted(sent)


def test_webhdfs_write_and_read_back(stack, cfg):
    client = InsecureClient(cfg.hdfs.webhdfs, user=cfg.hdfs.user)
    path = f"/tradelake/it/{uuid.uuid4().hex}/hello.bin"
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    client.write(path, data=payload, overwrite=False)
    with client.read(path) as reader:
        assert reader.read() == payload
    assert client.status(path)["length"] == len(payload)
    assert client.status(path)["replication"] == 1
    client.delete(path.rsplit("/", 1)[0], recursive=True)


def test_happybase_put_get_on_new_table(stack, cfg):
    conn = happybase.Connection(cfg.hbase.thrift_host, cfg.hbase.thrift_port)
    name = f"it_{uuid.uuid4().hex[:8]}"
    conn.create_table(name, {"q": {"max_versions": 3}})
    try:
        table = conn.table(name)
        table.put(b"AAPL|1", {b"q:bid": b"189.10", b"q:ask": b"189.12"})
        table.put(b"MSFT|1", {b"q:bid": b"401.00"})
        assert table.row(b"AAPL|1") == {b"q:bid": b"189.10", b"q:ask": b"189.12"}
        assert [key for key, _ in table.scan(row_prefix=b"MSFT")] == [b"MSFT|1"]
    finally:
        conn.delete_table(name, disable=True)
        conn.close()
