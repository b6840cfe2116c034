"""Pure training rules: functions of (evidence, now) with typed inputs and outputs.

``lifecycle`` (session states and the learner's view), ``attendance`` (intervals per learner),
``completion`` (live and recording), ``certification`` (course completion, validity, issuing,
CRM checks), ``rsvp`` (seats and waitlist), ``reminders`` (what is due to whom). No I/O and no
clock: ``now`` is always an argument.
"""
