// Reads an annotated CSV file with InfluxData's JavaScript client (the parser it uses for
// query results) and prints every record row as JSON: {label: [datatype, group, value]}.
// Used by tests/test_formats.py as an independent reader of what multivac writes.
const {stringToLines, linesToTables} = require('@influxdata/influxdb-client')
const fs = require('fs')

const rows = []
stringToLines(fs.readFileSync(process.argv[2], 'utf8'), linesToTables({
  next(values, meta) {
    const row = {}
    for (const column of meta.columns) {
      row[column.label] = [column.dataType, column.group, meta.get(values, column.label)]
    }
    rows.push(row)
  },
  error(error) {
    console.error(String(error))
    process.exit(1)
  },
  complete() {
    process.stdout.write(JSON.stringify(rows))
  },
}))
