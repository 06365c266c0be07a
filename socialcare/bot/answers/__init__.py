"""Answer forms: a reply as text, a picture, a call back or a calculation — what the
customer takes in best — and the calculators that prove a tariff is cheaper."""
