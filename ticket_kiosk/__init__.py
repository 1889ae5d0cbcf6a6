"""The ticket kiosk (発券機): a touch page on the public API, and the receipt printer."""
