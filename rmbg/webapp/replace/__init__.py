"""The AI background feature: a new background generated behind the subject (the decisions, `replacing`) and its tab."""
