"""Local-folder copy benchmark: `vpack sync` beside `cp -r` and `rclone copy`."""
