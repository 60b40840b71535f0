"""The driver's pages: start (from the QR code), pay, follow the charge live, receipt."""
