module spawngate/chart-render

go 1.19
