"""The declared compatibility cells of each store, from the stores' documentation.

Data only: each provider class points its ``compat`` at one table here
(``S3Provider.compat = AWS_S3``). Limits are numbers (bytes unless the name
says otherwise); ``omnifs compat --probe`` checks the probeable ones against a
live store (:mod:`.probe`).
"""

from __future__ import annotations

from .capabilities import CompatTable, no, partly, yes

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
WEEK = 7 * 24 * 3600

_STREAMED_BUCKETS = "omnifs streams between buckets (its copy() works inside one bucket)"

AWS_S3 = CompatTable("Amazon S3", {
    "copy_same_bucket": yes("CopyObject; UploadPartCopy above 5 GiB",
                            max_single_copy_bytes=5 * GiB),
    "copy_cross_bucket": yes(_STREAMED_BUCKETS),
    "copy_cross_region": yes("CopyObject from a bucket in another region; " + _STREAMED_BUCKETS),
    "multipart": yes("parallel parts", min_part_bytes=5 * MiB, max_part_bytes=5 * GiB,
                     max_parts=10000, max_object_bytes=5 * TiB, max_single_put_bytes=5 * GiB),
    "conditional_writes": yes("If-None-Match: * and If-Match on PutObject and "
                              "CompleteMultipartUpload; copy-source conditions"),
    "checksums": yes("md5 (ETag of a single-part upload), crc32, crc32c, crc64nvme, sha1, "
                     "sha256; composite (checksum of part checksums) for multipart"),
    "versioning": yes("bucket setting; ListObjectVersions"),
    "object_lock": yes("Object Lock: governance and compliance retention, legal hold "
                       "(enabled per bucket)"),
    "storage_classes": yes("STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, "
                           "GLACIER_IR, GLACIER, DEEP_ARCHIVE; GLACIER and DEEP_ARCHIVE need "
                           "RestoreObject (minutes to 48 h) before a read"),
    "user_metadata": yes("x-amz-meta-*: names and values count; US-ASCII names",
                         max_bytes=2 * KiB),
    "key_limits": yes("UTF-8; any character, some need URL encoding", max_key_bytes=1024),
    "listing": yes("delimiter and prefix; strong read-after-write consistency",
                   max_page_entries=1000),
    "range_reads": yes("one byte range per GET"),
    "sse": yes("SSE-S3, SSE-KMS, DSSE-KMS, SSE-C"),
    "presigned_urls": yes("SigV4 query signing", max_expiry_seconds=WEEK),
})

MINIO = CompatTable("MinIO", {
    "copy_same_bucket": yes("CopyObject; UploadPartCopy above 5 GiB",
                            max_single_copy_bytes=5 * GiB),
    "copy_cross_bucket": yes(_STREAMED_BUCKETS),
    "copy_cross_region": partly("copy_cross_region",
                                "one deployment is one region; site replication is separate"),
    "multipart": yes("parallel parts", min_part_bytes=5 * MiB, max_part_bytes=5 * GiB,
                     max_parts=10000, max_object_bytes=5 * TiB),
    "conditional_writes": yes("If-None-Match: * and If-Match on PutObject"),
    "checksums": yes("md5 (ETag of a single-part upload), crc32, crc32c, sha1, sha256"),
    "versioning": yes("bucket setting (erasure-coded deployments)"),
    "object_lock": yes("Object Lock: governance and compliance, legal hold (set at bucket "
                       "creation)"),
    "storage_classes": partly("storage_classes",
                              "STANDARD and REDUCED_REDUNDANCY are parity levels, not price "
                              "tiers; ILM transitions to remote tiers",
                              "tier moves limited to the two parity classes"),
    "user_metadata": yes("x-amz-meta-*, as S3", max_bytes=2 * KiB),
    "key_limits": yes("UTF-8; no '//' or '.'/'..' segments", max_key_bytes=1024),
    "listing": yes("delimiter and prefix; strict consistency", max_page_entries=1000),
    "range_reads": yes("one byte range per GET"),
    "sse": yes("SSE-S3 and SSE-KMS (through KES), SSE-C"),
    "presigned_urls": yes("SigV4 query signing", max_expiry_seconds=WEEK),
})

GCS = CompatTable("Google Cloud Storage", {
    "copy_same_bucket": yes("objects.rewrite (metadata-only when location and class match)"),
    "copy_cross_bucket": yes(_STREAMED_BUCKETS),
    "copy_cross_region": yes("objects.rewrite, possibly in several calls; " + _STREAMED_BUCKETS),
    "multipart": yes("resumable upload in chunks (omnifs: sequential); compose of up to 32 "
                     "objects; XML API multipart", chunk_multiple_bytes=256 * KiB,
                     max_object_bytes=5 * TiB, max_compose_sources=32),
    "conditional_writes": yes("ifGenerationMatch (0: only if absent), ifMetagenerationMatch"),
    "checksums": yes("md5 (not for composite objects), crc32c (always, composite too); "
                     "no sha256"),
    "versioning": yes("bucket setting (generations); soft delete"),
    "object_lock": yes("bucket retention policy and Bucket Lock, object retention, "
                       "event-based and temporary holds"),
    "storage_classes": yes("STANDARD, NEARLINE, COLDLINE, ARCHIVE; readable at once, no "
                           "rehydration (retrieval fees, minimum durations)"),
    "user_metadata": yes("custom metadata: names and values count", max_bytes=8 * KiB),
    "key_limits": yes("UTF-8; no CR or LF; not '.' or '..'", max_key_bytes=1024),
    "listing": yes("delimiter and prefix; strong consistency", max_page_entries=1000),
    "range_reads": yes("one byte range per GET"),
    "sse": yes("Google-managed keys, CMEK (Cloud KMS), CSEK (customer-supplied)"),
    "presigned_urls": yes("V4 signed URLs", max_expiry_seconds=WEEK),
})

AZURE = CompatTable("Azure Blob Storage", {
    "copy_same_bucket": yes("Copy Blob (synchronous within one account)"),
    "copy_cross_bucket": yes(_STREAMED_BUCKETS),
    "copy_cross_region": yes("asynchronous Copy Blob across accounts; " + _STREAMED_BUCKETS),
    "multipart": yes("block blobs: blocks staged in parallel, then committed",
                     max_part_bytes=4000 * MiB, max_parts=50000,
                     max_object_bytes=190 * TiB, max_single_put_bytes=5000 * MiB),
    "conditional_writes": yes("If-Match / If-None-Match on ETag, If-Modified-Since"),
    "checksums": yes("md5 (Content-MD5; omnifs sets it on staged uploads), transactional "
                     "crc64; no sha256"),
    "versioning": yes("blob versioning (account setting), snapshots"),
    "object_lock": yes("immutability policies (time-based retention, legal hold), container "
                       "or version level"),
    "storage_classes": yes("Hot, Cool, Cold, Archive; Archive needs rehydration (up to 15 h "
                           "standard, under 1 h high priority) before a read"),
    "user_metadata": yes("names are C# identifiers (no '-'); names and values count",
                         max_bytes=8 * KiB),
    "key_limits": yes("up to 1024 characters, 254 path segments", max_key_bytes=1024),
    "listing": yes("delimiter and prefix; strong consistency", max_page_entries=5000),
    "range_reads": yes("one byte range per GET"),
    "sse": yes("Microsoft-managed keys, customer-managed keys (Key Vault), customer-provided "
               "keys, encryption scopes"),
    "presigned_urls": yes("SAS tokens (user delegation SAS)", max_expiry_seconds=WEEK),
})

LOCAL = CompatTable("local filesystem", {
    "copy_same_bucket": yes("a local file copy (sparse-aware); no network"),
    "copy_cross_bucket": yes("one filesystem tree: any two paths"),
    "copy_cross_region": no("copy_cross_region", "one machine"),
    "multipart": no("multipart", "one sequential write; the filesystem's file size limit"),
    "conditional_writes": partly("conditional_writes",
                                 "if-absent by link(2), atomic; if-match compared and renamed "
                                 "under an flock of the directory",
                                 "atomic among omnifs's own writers only; another program "
                                 "writing between the compare and the rename is overwritten"),
    "checksums": no("checksums"),
    "versioning": no("versioning"),
    "object_lock": no("object_lock", "chattr +i needs root; omnifs does not use it"),
    "storage_classes": no("storage_classes"),
    "user_metadata": yes("user.* extended attributes (a sidecar file where the filesystem "
                         "has none)", max_bytes=2 * KiB),
    "key_limits": yes("a path: 255 bytes per component, no NUL", max_key_bytes=4096,
                      max_component_bytes=255),
    "listing": yes("directories are the delimiter; no pages"),
    "range_reads": yes("pread"),
    "sse": no("sse", "disk encryption (LUKS, fscrypt) is outside omnifs"),
    "presigned_urls": no("presigned_urls"),
})
