"""The webhook receiver (Flask): verify, validate, normalise at the door, keep the delivery, 202.

app.py is the Flask app, intake.py the one Redis script that keeps a delivery and wants its ticket
looked at, api.py the read-only ticket API, metrics.py /metrics, web.py the gunicorn server.
"""
