"""Small file operations on any Hadoop file system (local, ``s3a://``, EMRFS ``s3://``, HDFS).

Everything goes through the session's Hadoop ``FileSystem``, so one code path serves every
place a job's outputs live, with the same credentials and endpoints Spark itself uses.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

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

    Of two concurrent callers exactly one gets True, by what the storage guarantees:

    * local file system (``/x``, ``file:``): ``open(O_CREAT | O_EXCL)`` (POSIX ``open(2)``);
    * S3 (``s3://``, ``s3a://``, ``s3n://``): a conditional ``PutObject`` with
      ``If-None-Match: *``, answered ``412 Precondition Failed`` when the key exists (Amazon S3
      User Guide, "Conditional writes"); boto3's credential chain and ``AWS_ENDPOINT_URL``;
    * anything else (HDFS): ``FileSystem.create(path, overwrite=false)``, atomic on the
      NameNode.

    Raises:
        OSError, botocore.exceptions.ClientError, py4j.protocol.Py4JJavaError: when the
            storage refuses the write for another reason (permissions, a missing bucket).
    """
    scheme = urlsplit(path).scheme.lower()
    if scheme in ("", "file"):
        return _create_local(unquote(urlsplit(path).path) if scheme else path, text)
    if scheme in ("s3", "s3a", "s3n"):
        return _create_s3(path, text)
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


def _create_local(path: str, text: str) -> bool:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return True


def _create_s3(path: str, text: str) -> bool:
    import boto3
    from botocore.exceptions import ClientError

    parts = urlsplit(path)
    try:
        boto3.client("s3").put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"),
                                      Body=text.encode("utf-8"), IfNoneMatch="*")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            return False
        raise
    return True


def delete(spark: SparkSession, path: str, recursive: bool = False) -> bool:
    """Delete ``path`` (a folder only with ``recursive``); True when something was deleted."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return bool(filesystem.delete(hadoop_path, recursive))


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, replacing it: a hidden temporary file beside it,
    renamed into place (atomic on local and HDFS file systems; on S3 the object appears whole).

    Raises:
        py4j.protocol.Py4JJavaError: when the folder cannot be written.
        OSError: when the rename fails.
    """
    filesystem, final = hadoop_filesystem(spark, path)
    jvm = spark.sparkContext._jvm
    temporary = jvm.org.apache.hadoop.fs.Path(final.getParent(), f".{final.getName()}.tmp")
    stream = filesystem.create(temporary, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    filesystem.delete(final, False)
    if not filesystem.rename(temporary, final):
        raise OSError(f"could not rename {temporary} to {final}")


def writes_without_jvm(path: str) -> bool:
    """True when :func:`write_text_without_jvm` can write ``path`` (local or S3)."""
    return urlsplit(path).scheme.lower() in ("", "file", "s3", "s3a", "s3n")


def write_text_without_jvm(path: str, text: str) -> None:
    """Write ``text`` to ``path`` from Python alone, for when Spark's JVM is gone.

    Local: a hidden temporary file renamed into place (``os.replace``, atomic on POSIX).
    S3: one ``PutObject`` (an object appears whole or not at all), through boto3.

    Raises:
        ValueError: for another scheme; OSError, botocore errors: when the write fails.
    """
    parts = urlsplit(path)
    scheme = parts.scheme.lower()
    if scheme in ("s3", "s3a", "s3n"):
        import boto3

        boto3.client("s3").put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"),
                                      Body=text.encode("utf-8"))
        return
    if scheme not in ("", "file"):
        raise ValueError(f"cannot write {path} without Spark's JVM")
    local = unquote(parts.path) if scheme else path
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    temporary = os.path.join(os.path.dirname(os.path.abspath(local)), f".{os.path.basename(local)}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, local)
