"""The demo agent's flow: Bright Smile Dental books a dental appointment.

Service, day and time, name (surname spelled), phone number read back, one read-back of
the whole booking, goodbye and hang-up; opening hours, the address, prices and "can I
talk to a person" answered from anywhere. Every line is a template: the embedded 135M
model never has to invent the clinic's facts (it used to).
"""

from __future__ import annotations

from voice_core.flows.spec import FlowSpec

HOURS = "We're open Monday to Friday from 8 am to 6 pm, and Saturday from 9 am to 1 pm."

DENTAL_FLOW = FlowSpec.model_validate(
    {
        "start": "booking",
        "slots": [
            {
                "name": "service",
                "type": "enum",
                "prompt": "What would you like to book: a cleaning, a check-up, a filling, "
                "whitening, or an emergency visit?",
                "values": {
                    "cleaning": ["clean", "cleaned", "cleaning", "hygiene", "polish", "scale"],
                    "check-up": ["checkup", "check up", "check", "exam", "examination", "routine"],
                    "filling": ["filling", "fillings", "cavity", "cavities", "hole"],
                    "whitening": ["whiten", "whitening", "whiter", "bleach", "bleaching"],
                    "emergency": [
                        "emergency",
                        "pain",
                        "toothache",
                        "broken",
                        "chipped",
                        "swelling",
                        "swollen",
                        "hurts",
                        "urgent",
                    ],
                },
                "spoken": {
                    "cleaning": "a cleaning",
                    "check-up": "a check-up",
                    "filling": "a filling",
                    "whitening": "a whitening",
                    "emergency": "an emergency visit",
                },
            },
            {
                "name": "day",
                "type": "weekday",
                "prompt": "Which day would suit you?",
                "allowed": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
                "invalid": "Sorry, we're closed on Sundays. Which other day works for you?",
            },
            {
                "name": "time",
                "type": "time",
                "prompt": "And what time works best for you?",
                "between": ["08:00", "17:30"],
                "invalid": "Sorry, we're open from 8 am to 6 pm. What time in that window "
                "works for you?",
            },
            {
                "name": "name",
                "type": "name",
                "prompt": "May I have your first and last name? Please spell your last name "
                "for me.",
            },
            {
                "name": "phone",
                "type": "phone",
                "prompt": "And what's the best phone number to reach you?",
                "min_digits": 10,
                "max_digits": 11,
                "invalid": "Sorry, I need a ten digit phone number. Could you say it again?",
                "confirm": "I have {phone}. Is that right?",
            },
        ],
        "nodes": [
            {
                "id": "booking",
                "say": "Thank you for calling Bright Smile Dental. How can I help you today?",
                "collect": ["service", "day", "time", "name", "phone"],
                "confirm": "So that's {service} on {day} {time}, for {name}. Shall I book it?",
                "confirmed": "Great, you're booked.",
                "next": "goodbye",
            },
            {
                "id": "goodbye",
                "say": "We'll see you on {day}. Thank you for calling Bright Smile Dental, "
                "goodbye!",
                "action": "end_call",
            },
            {
                "id": "cannot_understand",
                "say": "I'm sorry, I'm having trouble hearing you. Please call us back, or "
                "visit us at 12 Main Street. Goodbye!",
                "action": "end_call",
            },
        ],
        "global_nodes": [
            {
                "id": "hours",
                "phrases": ["hours", "open", "opening", "close", "closing"],
                "say": HOURS,
            },
            {
                "id": "address",
                "phrases": ["address", "where are you", "located", "location", "directions"],
                "say": "We're at 12 Main Street.",
            },
            {
                "id": "prices",
                "phrases": ["cost", "costs", "price", "prices", "how much", "insurance"],
                "say": "I can't quote prices on the phone, but the front desk will go over "
                "the costs with you at your visit.",
            },
            {
                "id": "person",
                "phrases": [
                    "a person",
                    "real person",
                    "human",
                    "someone",
                    "speak to",
                    "talk to",
                    "receptionist",
                ],
                "say": "Our front desk is with patients right now, but I can book you in myself.",
            },
            {
                "id": "bye",
                "phrases": ["goodbye", "bye", "hang up", "never mind", "that's all"],
                "say": "Thanks for calling Bright Smile Dental. Goodbye!",
                "action": "end_call",
            },
        ],
        "fallback_node": "cannot_understand",
        "summary": "{name} booked {service} on {day} {time}; phone {phone:value}.",
        "summary_incomplete": "The caller did not finish booking an appointment.",
    }
)


# What the caller says in `make demo`'s call: a whole booking, with a correction.
DEMO_CALLER_LINES = (
    "Hi, I would like to book a teeth cleaning, please.",
    "Tuesday at 10 am would be great.",
    "My name is David Brown.",
    "5 5 5, 0 1 9, 2 8 4 7.",
    "Yes.",
    "No, Wednesday.",
    "Yes, thank you.",
)
