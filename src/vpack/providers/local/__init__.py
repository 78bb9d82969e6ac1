"""Local folders: a disk or a mounted share."""
