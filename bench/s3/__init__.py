"""S3 download benchmark: `vpack sync` beside `rclone copy` against moto's S3 server."""
