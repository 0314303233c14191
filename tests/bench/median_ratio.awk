# Input lines "ROUND CASE REQUESTS WORKER-CPU-TICKS"; -v hz (ticks per
# second) and -v cases ("bare a b ...", bare first). Prints per case the
# mean worker CPU per request and the median over rounds of its ratio to
# that round's bare figure.
{ us[$1, $2] = $4 / hz * 1e6 / $3; rounds[$1] = 1 }
END {
    printf "%-12s %18s %15s\n", "case", "worker CPU us/req", "median vs bare"
    ncases = split(cases, order, " ")
    for (k = 1; k <= ncases; k++) {
        c = order[k]; n = 0; total = 0
        for (r in rounds) { ratio[++n] = us[r, c] / us[r, "bare"]; total += us[r, c] }
        for (i = 2; i <= n; i++)    # insertion sort: mawk has no asort
            for (j = i; j > 1 && ratio[j - 1] > ratio[j]; j--) {
                t = ratio[j]; ratio[j] = ratio[j - 1]; ratio[j - 1] = t
            }
        median = n % 2 ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
        printf "%-12s %18.2f %15.2f\n", c, total / n, median
    }
}
