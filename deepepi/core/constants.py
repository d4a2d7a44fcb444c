"""The numbers the OpenSeizureDetector app and the OSDB formats fix, each defined once.

Everything that needs one of these imports it from here; a literal copy elsewhere is a defect
(two copies drift apart, and the user sees two answers).
"""

from __future__ import annotations

SAMPLE_FREQ_HZ = 25            # the watch's accelerometer rate in the OSDB formats
SAMPLES_PER_DATAPOINT = 125    # one OSD datapoint: 5 s at 25 Hz
DATAPOINT_SECONDS = 5.0        # the app's SamplePeriod: one datapoint every 5 s
DEFAULT_THRESHOLD = 0.5        # decision threshold when neither the model nor the user gives one
APP_ACC_SD_THRESHOLD_PCT = 5.0 # the app's default movement gate (accSdThreshold, % of the mean)
APP_WARN_TIME_S = 5.0         # the app's default WarnTime: WARNING once positives have lasted longer than this
APP_ALARM_TIME_S = 10.0       # the app's default AlarmTime: ALARM once positives have lasted longer than this
OSD_ALARM_STATE = 2            # a recorded osdAlarmState >= this is an OSD alarm (2 ALARM and higher)
DEFAULT_ENSEMBLE_Q = 0.6       # `deepepi ensemble`'s default Harrell-Davis quantile (graph input q overrides it)
