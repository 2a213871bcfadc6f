"""Small file operations on any Hadoop file system (local, ``s3a://``, EMRFS ``s3://``, HDFS).

Everything goes through the session's Hadoop ``FileSystem``, so one code path serves every
place a job's outputs live, with the same credentials and endpoints Spark itself uses.
"""

from __future__ import annotations

from pyspark.sql import SparkSession


def hadoop_filesystem(spark: SparkSession, path: str):
    """``(FileSystem, Path)`` JVM objects of Hadoop for ``path`` (local, s3a, hdfs...)."""
    hadoop_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def qualified(spark: SparkSession, path: str) -> str:
    """``path`` as the file system names it in listings (``output/x`` -> ``file:/abs/output/x``)."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return str(filesystem.makeQualified(hadoop_path).toString()).rstrip("/")


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` exists, asked through Hadoop's FileSystem."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return bool(filesystem.exists(hadoop_path))


def list_files(spark: SparkSession, folder: str, hidden: bool = False) -> list[str]:
    """All files below ``folder``, recursively, as full URIs; [] when it does not exist.

    With ``hidden=False`` files whose names start with ``_`` or ``.`` (Spark's and Hadoop's
    bookkeeping, ``_SUCCESS``, ``.crc``) are left out, as Spark's readers leave them out.
    """
    if not path_exists(spark, folder):
        return []
    filesystem, root = hadoop_filesystem(spark, folder)
    files, iterator = [], filesystem.listFiles(root, True)
    while iterator.hasNext():
        status_path = iterator.next().getPath()
        if hidden or not status_path.getName().startswith(("_", ".")):
            files.append(status_path.toString())
    return files


def list_children(spark: SparkSession, folder: str) -> list[str]:
    """Names of the entries directly inside ``folder`` (files and folders); [] when absent."""
    if not path_exists(spark, folder):
        return []
    filesystem, root = hadoop_filesystem(spark, folder)
    return sorted(status.getPath().getName() for status in filesystem.listStatus(root))


def is_folder(spark: SparkSession, path: str) -> bool:
    """True when ``path`` exists and is a folder (a prefix with objects below it, on S3)."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return bool(filesystem.exists(hadoop_path) and filesystem.getFileStatus(hadoop_path).isDirectory())


def read_text(spark: SparkSession, path: str) -> str:
    """The whole file at ``path`` as UTF-8 text.

    Raises:
        py4j.protocol.Py4JJavaError: wrapping ``FileNotFoundException`` when it is missing.
    """
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    jvm = spark.sparkContext._jvm
    stream = filesystem.open(hadoop_path)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode("utf-8")
    finally:
        stream.close()


def create_exclusive(spark: SparkSession, path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; True when this call created it.

    Uses ``FileSystem.create(path, overwrite=false)``: on a local file system and HDFS the
    create fails when the file exists (the check and the create are one call), so of two
    concurrent callers exactly one wins; on S3A the check is a HEAD before the upload.
    """
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    try:
        stream = filesystem.create(hadoop_path, False)
    except Exception as error:  # noqa: BLE001 - py4j wraps FileAlreadyExistsException
        if "FileAlreadyExists" in str(error) or filesystem.exists(hadoop_path):
            return False
        raise
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return True


def delete(spark: SparkSession, path: str, recursive: bool = False) -> bool:
    """Delete ``path`` (a folder only with ``recursive``); True when something was deleted."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return bool(filesystem.delete(hadoop_path, recursive))
