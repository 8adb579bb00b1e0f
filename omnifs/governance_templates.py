"""Ready rule sets to copy into a config: ``omnifs gov templates`` prints them.

Each is TOML for ``[[governance.rules]]`` (and classes); store names and
region globs are examples to adapt.
"""

from __future__ import annotations

TEMPLATES: dict[str, tuple[str, str]] = {
    "gdpr-eu": ("GDPR-style EU residency: personal data stays in EU regions", '''\
[[governance.classes]]
paths = ["/customers/**", "/hr/**"]
class = "personal"

[[governance.rules]]
name = "gdpr-eu-residency"
classification = "personal"
paths = ["/**"]
regions = ["eu-*", "europe-*"]
'''),
    "hipaa": ("HIPAA-style: PHI encrypted at rest, kept 6 years, two copies, audit on", '''\
[[governance.classes]]
paths = ["/phi/**"]
class = "phi"

[[governance.rules]]
name = "hipaa-phi"
classification = "phi"
paths = ["/**"]
encryption = true
retention = "6y"
min_copies = 2

[governance.audit]
enabled = true
'''),
    "sec-17a-4": ("SEC 17a-4-style WORM: records cannot change or go for 7 years", '''\
[[governance.rules]]
name = "sec-17a-4-worm"
paths = ["/records/**"]
retention = "7y"
min_copies = 2
distinct_regions = 2
'''),
    "sovereignty": ("Data sovereignty per country: each country's data on its own soil", '''\
[[governance.rules]]
name = "sovereignty-de"
paths = ["/de/**"]
regions = ["eu-central-1", "europe-west3"]

[[governance.rules]]
name = "sovereignty-fr"
paths = ["/fr/**"]
regions = ["eu-west-3", "europe-west9"]

[[governance.rules]]
name = "sovereignty-ca"
paths = ["/ca/**"]
regions = ["ca-*", "northamerica-northeast*"]
'''),
    "two-regions-two-vendors": ("Two regions, two vendors: survive a region or a vendor", '''\
[[governance.rules]]
name = "two-regions-two-vendors"
paths = ["/**"]
min_copies = 2
distinct_regions = 2
# and name stores of two vendors, e.g.
# providers = ["aws-east", "gcp-europe"]
'''),
}
