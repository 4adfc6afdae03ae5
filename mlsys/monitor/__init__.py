"Chapter 8: distribution shifts and monitoring (drift detectors, windows, validation, alerts, dashboard, feedback loops)."
