"""Hikvision NVRs and cameras over ISAPI."""
