package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of the CPU times in /proc.
const clockTicks = 100

// CPUSeconds returns the CPU time the server has used so far: its
// postmaster's, its live backends' and that of the processes that have
// exited (which the postmaster has reaped), read from /proc. For benchmarks
// that count the database's share of the work beside the server's.
func (s *Server) CPUSeconds() (float64, error) {
	pid := s.cmd.Process.Pid
	utime, stime, cutime, cstime, _, err := procCPU(strconv.Itoa(pid))
	if err != nil {
		return 0, err
	}
	ticks := utime + stime + cutime + cstime
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		u, st, _, _, ppid, err := procCPU(filepath.Base(d))
		if err != nil || ppid != pid {
			continue // gone meanwhile, or not a backend of this server
		}
		ticks += u + st
	}
	return float64(ticks) / clockTicks, nil
}

// procCPU reads a process's utime, stime, cutime and cstime (clock ticks)
// and its parent's pid from /proc/PID/stat.
func procCPU(pid string) (utime, stime, cutime, cstime int64, ppid int, err error) {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields counted here follow its closing one.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, 0, 0, 0, 0, fmt.Errorf("pgtest: short /proc/%s/stat", pid)
	}
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[11..14] fields 14-17.
	ppid, _ = strconv.Atoi(f[1])
	var v [4]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return 0, 0, 0, 0, 0, fmt.Errorf("pgtest: /proc/%s/stat: %w", pid, err)
		}
	}
	return v[0], v[1], v[2], v[3], ppid, nil
}
