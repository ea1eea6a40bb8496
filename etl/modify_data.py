"""Append generated employee records to the attrition dataset.

The seed's modify_data step: read the CSV the fetch step brought back, add
ROWS new records (simulating an ETL step), write it back in place. The
records are random but seeded by the run id, so a run can be reproduced.
"""

import csv
import os
import random
import sys

COLUMNS = [
    "EmployeeNumber", "Age", "Department", "JobRole", "MonthlyIncome",
    "YearsAtCompany", "OverTime", "Attrition",
]
ROLES = {
    "Research & Development": ["Research Scientist", "Laboratory Technician", "Manager"],
    "Sales": ["Sales Executive", "Sales Representative", "Manager"],
    "Human Resources": ["Human Resources", "Manager"],
}


def main() -> int:
    path = os.environ.get("CAIRN_DATASET", "datasets/employee_attrition.csv")
    rows = int(os.environ.get("ROWS", "1"))
    rng = random.Random(os.environ.get("CAIRN_RUN_ID", "local"))

    existing = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != COLUMNS:
                print(f"{path}: unexpected columns {reader.fieldnames}", file=sys.stderr)
                return 1
            existing = list(reader)
    else:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    next_id = max((int(r["EmployeeNumber"]) for r in existing), default=0) + 1
    with open(path, "a" if existing else "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        if not existing:
            writer.writeheader()
        for number in range(next_id, next_id + rows):
            department = rng.choice(sorted(ROLES))
            writer.writerow({
                "EmployeeNumber": number,
                "Age": rng.randint(18, 60),
                "Department": department,
                "JobRole": rng.choice(ROLES[department]),
                "MonthlyIncome": rng.randint(1000, 20000),
                "YearsAtCompany": rng.randint(0, 40),
                "OverTime": rng.choice(["Yes", "No"]),
                "Attrition": rng.choice(["Yes", "No"]),
            })
    print(f"{path}: {len(existing)} -> {len(existing) + rows} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
