"""The SQLite database and its migration runner, shared by the OCPP side and the payments side.

Neither `csms` nor `payments` owns it: each brings its own tables as numbered migrations.
"""
