"""``omnifs bench``: the same scenarios on every provider, measured, kept, reported, compared.

Modules:

* :mod:`.scenario`: scenarios as TOML data, checked (built-ins in ``scenarios/``);
* :mod:`.plan`: the seeded operation sequence of one cell, the same for every provider;
* :mod:`.payload`: the seeded bytes written, streamed at any size;
* :mod:`.runner`: runs object scenarios and measures them (ops/s, MB/s, latency, CPU, RSS);
* :mod:`.mountbench`: mount scenarios, through a real FUSE mount;
* :mod:`.netprofile`: network profiles played by the faulty provider wrapper;
* :mod:`.session`: one run over the chosen providers, as a JSON-ready record;
* :mod:`.results`: result rows, environment, the history directory;
* :mod:`.cost`: what a run costs on real clouds, from the shared price tables;
* :mod:`.report`: results as a report (omnifs.report: md, html, json);
* :mod:`.compare`: baseline against current with a noise model.
"""
