#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: Count persons by age band and sex
doc: Runs count_by_age_sex.py with the host's python3 (standard library only; no container).

requirements:
  ToolTimeLimit:
    timelimit: 600
  NetworkAccess:
    networkAccess: false

baseCommand: [python3, -I]

inputs:
  script:
    type: File
    default:
      class: File
      location: count_by_age_sex.py
    inputBinding:
      position: 0
  dataset:
    type: File
    inputBinding:
      prefix: --dataset
      position: 1
  reference_year:
    type: int
    inputBinding:
      prefix: --reference-year
      position: 2

arguments:
  - prefix: --out
    valueFrom: age_sex_table.csv
    position: 3

outputs:
  table:
    type: File
    outputBinding:
      glob: age_sex_table.csv
