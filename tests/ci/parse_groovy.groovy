// Parse Groovy files without running them: compile each to the CONVERSION phase (syntax and AST), which
// is what Jenkins does first with a Jenkinsfile. Prints "OK <file>" or "ERROR <file>" and file:line:col lines.
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.Phases
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.MultipleCompilationErrorsException

int failures = 0
for (String path in args) {
    def unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(path))
    try {
        unit.compile(Phases.CONVERSION)
        println "OK ${path}"
    } catch (MultipleCompilationErrorsException e) {
        failures++
        println "ERROR ${path}"
        e.errorCollector.errors.each { err ->
            def cause = err.respondsTo('getCause') ? err.cause : null
            if (cause != null && cause.respondsTo('getLine')) {
                println "${path}:${cause.line}:${cause.startColumn}: ${cause.originalMessage ?: cause.message}"
            } else {
                println err.toString()
            }
        }
    }
}
System.exit(failures ? 1 : 0)
