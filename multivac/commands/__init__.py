"""One module per family of commands: each takes a resolved plan (see `config.py`),
runs the pipeline and prints to the stderr console; errors are raised for cli.py to
turn into one line and an exit code.

- `gather`: gather and replay (GitHub and InfluxDB);
- `failures`: failures stats, failures watch and report, over the local store;
- `reclassify`: the current rules over stored evidence;
- `local`: classify local logs, list and check rules (no GitHub, no InfluxDB).
"""
