"""Java command lines for the stack's JVM services: one classpath per service under var/jvm/."""

from __future__ import annotations

import shutil
from pathlib import Path

from tradelake.stack.base import StackPaths
from tradelake.stack.process import StackError

# The module flags HBase's own bin/hbase adds on JDK 11+, plus the ones Hadoop and Kafka
# need for reflective access on JDK 17; harmless for services that do not need them.
JDK17_FLAGS = [
    "--add-modules=jdk.unsupported",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
]


def java_binary() -> str:
    java = shutil.which("java")
    if not java:
        raise StackError("java not found on PATH: run `make setup` (installs OpenJDK 17)")
    return java


def service_lib(paths: StackPaths, service: str) -> Path:
    lib = paths.jvm / service / "lib"
    if not lib.is_dir() or not any(lib.glob("*.jar")):
        raise StackError(f"{service}: no jars in {lib}: run `make setup` to fetch them from Maven")
    return lib


def process_marker(paths: StackPaths, process: str) -> str:
    """The command-line marker of one stack process (see process.py)."""
    return f"{paths.marker} -Dtradelake.process={process}"


def java_command(
    paths: StackPaths,
    service: str,
    process: str,
    main_class: str,
    args: list[str],
    heap_mb: int,
    conf_dir: Path | None = None,
    props: dict[str, str] | None = None,
) -> list[str]:
    """``java`` with our marker, heap, temp dir inside var/, and the service's own classpath."""
    classpath = [str(conf_dir)] if conf_dir else []
    classpath.append(str(service_lib(paths, service)) + "/*")
    tmp = paths.tmp / service
    tmp.mkdir(parents=True, exist_ok=True)
    system_props = {"java.io.tmpdir": str(tmp), "java.net.preferIPv4Stack": "true", **(props or {})}
    return [
        java_binary(),
        *process_marker(paths, process).split(" "),
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1" if heap_mb <= 256 else "-XX:+TieredCompilation",
        *JDK17_FLAGS,
        *(f"-D{k}={v}" for k, v in system_props.items()),
        "-cp",
        ":".join(classpath),
        main_class,
        *args,
    ]


def hadoop_xml(properties: dict[str, object]) -> str:
    """A Hadoop-style ``*-site.xml`` document."""
    body = "\n".join(
        f"  <property><name>{k}</name><value>{v}</value></property>" for k, v in properties.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}\n</configuration>\n'
