module weft/benchmark/peers/go

go 1.19
